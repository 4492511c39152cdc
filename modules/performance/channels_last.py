"""Channels-last memory format for the UNet (A1111's --opt-channelslast): NHWC convolutions, the same
numbers within float rounding. choose_policy turns it on for CUDA; the setting forces it on or off."""
from __future__ import annotations

from modules.devices import MemoryPolicy

CHOICES = ("Automatic", "On", "Off")


def channels_last_choice(policy: MemoryPolicy, choice: str, reasons: list[str]) -> bool:
    """Whether the UNet goes channels-last: "Automatic" keeps the policy's pick."""
    if choice == "On" and not policy.channels_last:
        reasons.append("channels-last UNet (setting)")
        return True
    if choice == "Off" and policy.channels_last:
        reasons.append("channels-last off (setting)")
        return False
    return policy.channels_last
