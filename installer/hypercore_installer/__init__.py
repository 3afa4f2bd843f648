"""The Hypercore firstboot installer (imported as hypercore_installer)."""
