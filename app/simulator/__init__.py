"""The event simulator behind `clickstream simulate`: shoppers, scenarios, clocks, delivery."""

from app.events import EVENT_TYPES
from app.simulator.catalog import Catalog, build_catalog
from app.simulator.scenarios import Burst, FlashSale, Thresholds
from app.simulator.shoppers import ShopperBehaviour
from app.simulator.simulation import Simulation, SimulationOptions, build_simulation

__all__ = [
    "EVENT_TYPES",
    "Burst",
    "Catalog",
    "FlashSale",
    "ShopperBehaviour",
    "Simulation",
    "SimulationOptions",
    "Thresholds",
    "build_catalog",
    "build_simulation",
]
