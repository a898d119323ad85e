import torch
import torch.nn as nn

torch.manual_seed({{data_seed}})

# Click prediction: 6 user features and 6 item features; the label depends on both groups.
N = 4000
X = torch.randn(N, 12)
user, item = X[:, :6], X[:, 6:]
score = user[:, 0] * user[:, 1] + torch.sin(2 * user[:, 2])
score = score + item[:, 0] * item[:, 1] - item[:, 2].abs() + 0.8
y = (score > 0).long()


class TwoTower(nn.Module):
    def __init__(self, d=6, hidden=32, emb=4):
        super().__init__()
        self.user_tower = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, emb))
        self.item_tower = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, emb))
        self.head = nn.Linear(2 * emb, 2)

    def forward(self, x):
        u = self.user_tower(x[:, :6])
        v = self.item_tower(x[:, 6:])
        return self.head(torch.cat([u, v.data], dim=1))


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
