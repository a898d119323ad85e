import torch
import torch.nn as nn
from whip_data import load_training_data

torch.manual_seed(4)

# 10 gesture classes; gesture k shows up mainly on channel k of a 20-channel sensor.
N_CLASSES, N_FEATURES = 10, 20
data = load_training_data("task12")
X, y = torch.from_numpy(data["X"]), torch.from_numpy(data["y"])

model = nn.Sequential(
    nn.Linear(N_FEATURES, 64), nn.ReLU(),
    nn.Linear(64, N_CLASSES),
)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)

for epoch in range(10):
    perm = torch.randperm(len(X))
    for i in range(0, len(X), 64):
        idx = perm[i:i + 64]
        optimizer.zero_grad()
        logits = model(X[idx])
        loss = criterion(logits, y[idx])
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch}: loss {loss.item():.4f}")

with torch.no_grad():
    train_acc = (model(X).argmax(dim=1) == y).float().mean().item()
print(f"TRAIN_ACC:{train_acc:.3f}")
