"""Hypercore: VM services for the Hypercore appliance, and shared helpers."""
