import torch
import torch.nn as nn
from whip_data import load_training_data

torch.manual_seed({{data_seed}})

# Each document is a 16-d embedding and can carry several of 6 tags (multi-hot targets).
data = load_training_data("task4")
X = torch.from_numpy(data["X"])
Y = torch.from_numpy(data["y"])
N, D, L = X.shape[0], X.shape[1], Y.shape[1]

model = nn.Sequential(nn.Linear(D, 64), nn.ReLU(), nn.Linear(64, L))
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=0.003)

losses = []
for epoch in range(200):
    optimizer.zero_grad()
    logits = model(X)
    loss = criterion(logits, Y.argmax(dim=1))
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

with torch.no_grad():
    top = model(X).argmax(dim=1, keepdim=True)
    train_acc = Y.gather(1, top).float().mean().item()
print(f"LOSSES:{[round(v, 4) for v in losses[::20]]}")
print(f"TRAIN_ACC:{train_acc:.3f}")
