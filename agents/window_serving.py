"""Links the window stage to the read side below it (`tables.owned_partitions`).

tables/ may not import agents/, yet the web reads the running stage's partitions and routes
requests by its group members' client ids; this module, found by autodiscovery like every
agent, hands both down once per process.
"""

from __future__ import annotations

from agents.window_stage import MEMBER_PREFIX, WindowStage
from tables.owned_partitions import link_window_stage

link_window_stage(lambda: WindowStage.running, MEMBER_PREFIX)
