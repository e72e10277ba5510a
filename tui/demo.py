"""Demo controls on simulated hosts: each toggles one condition and says what it did."""

from __future__ import annotations

from edgetop.remote.sim import SimDevice

SPIKE_SHARE = 0.6  # share of the device a spike takes: enough to push a deployment over its SLO
HOT_C = 92.0  # a forced temperature above the throttling point


def toggle_spike(device: SimDevice) -> str:
    device.spike = 0.0 if device.spike else SPIKE_SHARE
    if device.spike:
        return f"{device.hostname}: load spike on ({device.spike:.0%} of the device taken)"
    return f"{device.hostname}: load spike off"


def toggle_throttle(device: SimDevice) -> str:
    """Hot and, on a Jetson, in its slowest power mode; again to cool it back down."""
    modes: tuple[str, ...] = getattr(device.profile, "power_modes", ())
    if device.forced_temp_c is None:
        device.forced_temp_c = HOT_C
        if device.accelerator_kind == "jetson" and modes:
            device.power_mode = modes[-1]
        return f"{device.hostname}: throttled ({HOT_C:.0f}°C, power mode {device.power_mode})"
    device.forced_temp_c = None
    device.power_mode = device.profile.default_power_mode
    return f"{device.hostname}: cooled down (power mode {device.power_mode})"


def toggle_down(device: SimDevice) -> str:
    device.down = not device.down
    return f"{device.hostname}: {'taken down' if device.down else 'back up (reconnecting)'}"
