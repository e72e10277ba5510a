"""Small fleet files shared by tests."""

SIM_PAIR = """
[[host]]
name = "a100-1"
transport = "sim"
device = "a100-40gb"
interval = 0.05

[[host]]
name = "{jetson}"
transport = "sim"
device = "jetson-agx-xavier"
interval = 0.05
"""
