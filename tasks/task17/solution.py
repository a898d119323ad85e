import torch
import torch.nn as nn
from whip_data import load_training_data

torch.manual_seed({{data_seed}})

# Click prediction: 6 user features and 6 item features; the label depends on both groups.
data = load_training_data("task17")
X, y = torch.from_numpy(data["X"]), torch.from_numpy(data["y"])
N = len(X)


class TwoTower(nn.Module):
    def __init__(self, d=6, hidden=32, emb=4):
        super().__init__()
        self.user_tower = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, emb))
        self.item_tower = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, emb))
        self.head = nn.Linear(2 * emb, 2)

    def forward(self, x):
        u = self.user_tower(x[:, :6])
        v = self.item_tower(x[:, 6:])
        return self.head(torch.cat([u, v], dim=1))


model = TwoTower()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
criterion = nn.CrossEntropyLoss()

for epoch in range(25):
    perm = torch.randperm(N)
    for i in range(0, N, 100):
        idx = perm[i:i + 100]
        loss = criterion(model(X[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if epoch % 5 == 0:
        with torch.no_grad():
            acc = (model(X).argmax(dim=1) == y).float().mean().item()
        print(f"epoch {epoch:2d}  loss {loss.item():.4f}  train_acc {acc:.3f}")
