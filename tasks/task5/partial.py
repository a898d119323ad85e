import torch
import torch.nn as nn
from whip_data import load_training_data

torch.manual_seed({{seed}})

# A hidden "world": 16 raw features driven by 6 latent factors. Two label sets live in it:
# a big 8-class task (used for pretraining) and our small 3-class task.
data = load_training_data("task5")

class Net(nn.Module):
    def __init__(self, n_classes):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU())
        self.fc = nn.Linear(32, n_classes)

    def forward(self, x):
        return self.fc(self.backbone(x))

def pretrain():
    net = Net(8)
    X_big, y_big = torch.from_numpy(data["X_pretrain"]), torch.from_numpy(data["y_pretrain"])
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for step in range(100):
        opt.zero_grad()
        nn.functional.cross_entropy(net(X_big), y_big).backward()
        opt.step()
    return {k: v.clone() for k, v in net.state_dict().items()}

checkpoint = pretrain()

# Transfer: reuse the pretrained backbone, train a fresh 3-class head on our 300 examples.
X, y = torch.from_numpy(data["X"]), torch.from_numpy(data["y"])
model = Net(8)
model.load_state_dict(checkpoint)
for p in model.parameters():
    p.requires_grad = False
model.fc = nn.Linear(32, 3)
optimizer = torch.optim.SGD(model.fc.parameters(), lr={{bad_lr}}, momentum=0.9)
criterion = nn.CrossEntropyLoss()

losses = []
for epoch in range(200):
    optimizer.zero_grad()
    loss = criterion(model(X), y)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

with torch.no_grad():
    train_acc = (model(X).argmax(dim=1) == y).float().mean().item()
print(f"LOSSES:{[round(v, 4) for v in losses[::20]]}")
print(f"TRAIN_ACC:{train_acc:.3f}")
