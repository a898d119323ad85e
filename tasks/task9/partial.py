import torch
import torch.nn as nn
from whip_data import load_training_data

torch.manual_seed({{seed}})

# XOR-style data: the label depends on which quadrant (of a slightly turned frame) a point is in.
data = load_training_data("task9")
X = torch.from_numpy(data["X"])
y = torch.from_numpy(data["y"])

model = nn.Sequential(
    nn.Linear(2, 32), nn.Tanh(),
    nn.Linear(32, 32), nn.Tanh(),
    nn.Linear(32, 2),
)

def init_weights(m):
    # start every layer from the same neutral point so runs are reproducible
    if isinstance(m, nn.Linear):
        nn.init.constant_(m.weight, 0.5)
        nn.init.zeros_(m.bias)

model.apply(init_weights)
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
criterion = nn.CrossEntropyLoss()

losses = []
for epoch in range(300):
    optimizer.zero_grad()
    loss = criterion(model(X), y)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

with torch.no_grad():
    train_acc = (model(X).argmax(dim=1) == y).float().mean().item()
print(f"LOSSES:{[round(v, 4) for v in losses[::30]]}")
print(f"TRAIN_ACC:{train_acc:.3f}")
