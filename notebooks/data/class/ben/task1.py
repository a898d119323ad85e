import torch
import torch.nn as nn
from whip_data import load_training_data

torch.manual_seed(4)

# Sensor readings (unnormalised, roughly in the range -60..60) and a binary label.
data = load_training_data("task1")
X = torch.from_numpy(data["X"])
y = torch.from_numpy(data["y"])
N_FEATURES = X.shape[1]

model = nn.Linear(N_FEATURES, 2)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=12.0, momentum=0.9)

losses = []
for epoch in range(100):
    optimizer.zero_grad()
    logits = model(X)
    loss = criterion(logits, y)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

with torch.no_grad():
    train_acc = (model(X).argmax(dim=1) == y).float().mean().item()
print(f"LOSSES:{[round(v, 4) for v in losses[::10]]}")
print(f"TRAIN_ACC:{train_acc:.3f}")
