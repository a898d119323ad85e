import torch
import torch.nn as nn
from whip_data import load_training_data

torch.manual_seed({{data_seed}})

# Sequence regression: read 15 numbers, output (a scaled version of) their sum at the end.
data = load_training_data("task18")
X, y = torch.from_numpy(data["X"]), torch.from_numpy(data["y"])
N, T = X.shape[0], X.shape[1]


class SumRNN(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.rnn = nn.RNN(1, hidden, nonlinearity="relu", batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x):
        h, _ = self.rnn(x)
        return self.out(h[:, -1]).squeeze(1)


model = SumRNN()
optimizer = torch.optim.SGD(model.parameters(), lr=0.08, momentum=0.9)
criterion = nn.MSELoss()

for epoch in range(20):
    perm = torch.randperm(N)
    for i in range(0, N, 50):
        idx = perm[i:i + 50]
        loss = criterion(model(X[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"epoch {epoch:2d}  loss {loss.item():.4f}")
