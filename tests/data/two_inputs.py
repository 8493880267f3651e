"""A model whose forward takes two inputs (token ids and a float mask), for kernels.count's repeatable --input."""
import torch


class TwoInputs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(100, 16)
        self.proj = torch.nn.Linear(16, 16, bias=False)

    def forward(self, ids, mask):
        return self.proj(self.embed(ids)) * mask.unsqueeze(-1)


def build():
    return TwoInputs()
