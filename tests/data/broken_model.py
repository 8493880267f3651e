"""Models that fail on purpose, for the fault tests (tests/test_faults.py)."""
import torch


class FailsInForward(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)

    def forward(self, x):
        raise RuntimeError("this model fails in forward on purpose")


def fails_in_forward():
    return FailsInForward()


def raises():
    raise ValueError("the factory itself fails")


def needs_argument(width):
    return torch.nn.Linear(width, width)


def not_a_module():
    return 42
