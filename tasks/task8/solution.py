import torch
import torch.nn as nn
from whip_data import load_training_data

torch.manual_seed({{seed}})

# Daily demand per store (a small real-valued target), from a store id and 3 standardised signals.
N_STORES = 6
data = load_training_data("task8")
table = data["X"]  # column 0: store id (a whole number), columns 1-3: signals
demand = data["y"]

X = torch.tensor(table, dtype=torch.float32)
y = torch.tensor(demand, dtype=torch.float32)

class DemandModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.store_emb = nn.Embedding(N_STORES, 4)
        self.mlp = nn.Sequential(nn.Linear(4 + 3, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x):
        s = self.store_emb(x[:, 0].long())
        return self.mlp(torch.cat([s, x[:, 1:].float()], dim=1)).squeeze(1)

model = DemandModel()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
criterion = nn.MSELoss()

losses = []
for epoch in range(200):
    optimizer.zero_grad()
    loss = criterion(model(X), y.float())
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

print(f"LOSSES:{[round(v, 4) for v in losses[::20]]}")
