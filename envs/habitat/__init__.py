"""``habitat``: the simulator backend on habitat-sim (optional; imported only when chosen).

``convert`` holds the conversions between our records and habitat-sim's and imports nothing of
habitat-sim; ``simulator`` holds :class:`~aeqa.envs.habitat.simulator.HabitatSim`.
"""
