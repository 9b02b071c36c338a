"""Neural networks: the ZAugNet generator (RIFE-style IFNet) and WGAN-GP critic."""

from .critic import Critic, critic_preset
from .ifnet import IFBlock, IFNet, IFNetOutput, distill_loss, ifnet_preset, warp

__all__ = [
    "Critic",
    "critic_preset",
    "IFBlock",
    "IFNet",
    "IFNetOutput",
    "distill_loss",
    "ifnet_preset",
    "warp",
]
