"""`berth doctor`: the failures people hit most, checked and explained with their fix."""
