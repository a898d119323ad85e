import torch
import torch.nn as nn
from whip_data import load_training_data

torch.manual_seed({{data_seed}})

# 10 kinds of machine fault: each fault raises one of the 16 sensors; all of them are noisy.
N_CLASSES, N_FEATURES = 10, 16
data = load_training_data("task10")
X, y = torch.from_numpy(data["X"]), torch.from_numpy(data["y"])
X_val, y_val = torch.from_numpy(data["X_val"]), torch.from_numpy(data["y_val"])

model = nn.Sequential(
    nn.Linear(N_FEATURES, 24), nn.BatchNorm1d(24), nn.ReLU(), nn.Dropout({{dropout}}),
    nn.Linear(24, 24), nn.BatchNorm1d(24), nn.ReLU(), nn.Dropout({{dropout}}),
    nn.Linear(24, N_CLASSES),
)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

for epoch in range(20):
    perm = torch.randperm(len(X))
    for i in range(0, len(X), 32):
        idx = perm[i:i + 32]
        optimizer.zero_grad()
        loss = criterion(model(X[idx]), y[idx])
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: loss {loss.item():.4f}")

model.eval()
with torch.no_grad():
    val_acc = (model(X_val).argmax(dim=1) == y_val).float().mean().item()
print(f"VAL_ACC:{val_acc:.3f}")
