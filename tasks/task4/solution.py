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
criterion = nn.BCEWithLogitsLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=0.003)

losses = []
for epoch in range(200):
    optimizer.zero_grad()
    logits = model(X)
    loss = criterion(logits, Y.float())
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

with torch.no_grad():
    pred = (model(X) > 0).long()
    tp = (pred & Y).sum().item()
    train_f1 = 2 * tp / (pred.sum().item() + Y.sum().item())
print(f"LOSSES:{[round(v, 4) for v in losses[::20]]}")
print(f"TRAIN_F1:{train_f1:.3f}")
