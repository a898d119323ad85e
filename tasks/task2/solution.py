import torch
import torch.nn as nn
from whip_data import load_training_data
import torch.nn.functional as F

torch.manual_seed({{data_seed}})

# 2-D sensor readings (roughly -6..6); label 1 when the point lies above a wavy boundary.
data = load_training_data("task2")
X = torch.from_numpy(data["X"])
y = torch.from_numpy(data["y"]).float()

model = nn.Sequential(
    nn.Linear(2, 32), nn.ReLU(),
    nn.Linear(32, 32), nn.ReLU(),
    nn.Linear(32, 1),
)
optimizer = torch.optim.Adam(model.parameters(), lr={{lr}})

losses = []
for epoch in range(250):
    optimizer.zero_grad()
    logits = model(X).squeeze(1)
    loss = F.binary_cross_entropy_with_logits(logits, y)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

with torch.no_grad():
    train_acc = ((model(X).squeeze(1) > 0).float() == y).float().mean().item()
print(f"LOSSES:{[round(v, 4) for v in losses[::25]]}")
print(f"TRAIN_ACC:{train_acc:.3f}")
