import torch
import torch.nn as nn
from whip_data import load_training_data

torch.manual_seed({{data_seed}})

# Regression on 8 features; the target is a smooth non-linear function of four of them.
data = load_training_data("task16")
X, y = torch.from_numpy(data["X"]), torch.from_numpy(data["y"])


class ResidualMLP(nn.Module):
    def __init__(self, d_in, hidden):
        super().__init__()
        self.inp = nn.Linear(d_in, hidden)
        self.block = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        h = h + torch.tanh(self.block(h))
        return self.out(h).squeeze(1)


model = ResidualMLP(8, 64)
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
criterion = nn.MSELoss()

batch_size = 64
for epoch in range(60):
    for i in range(0, len(X), batch_size):
        xb, yb = X[i:i + batch_size], y[i:i + batch_size]
        xb += {{noise}} * torch.randn_like(xb)  # input-noise augmentation
        loss = criterion(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if epoch % 10 == 0:
        print(f"epoch {epoch:2d}  loss {loss.item():.4f}")
