import torch
import torch.nn as nn

torch.manual_seed({{data_seed}})

# 10 kinds of machine fault: fault k raises sensor k; all 16 sensors are noisy.
N_CLASSES, N_FEATURES = 10, 16
centers = 4.0 * torch.eye(N_FEATURES)[:N_CLASSES]


def make_data(n):
    labels = torch.randint(0, N_CLASSES, (n,))
    return centers[labels] + torch.randn(n, N_FEATURES), labels


X, y = make_data(1500)
X_val, y_val = make_data(500)

model = nn.Sequential(
    nn.Linear(N_FEATURES, 24), nn.BatchNorm1d(24), nn.ReLU(),
    nn.Linear(24, 24), nn.BatchNorm1d(24), nn.ReLU(),
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

with torch.no_grad():
    val_acc = (model(X_val).argmax(dim=1) == y_val).float().mean().item()
print(f"VAL_ACC:{val_acc:.3f}")
