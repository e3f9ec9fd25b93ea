"""Datasets at scale: one recipe from CTs to labelled radiographs, resumable, local or on Dask.

    recipe = load_recipe("recipe.yaml")          # checked against the recipe's JSON schema
    summary = run_local(recipe, "out/")          # or medsynth.dataset.distributed.run_dask(...)

See docs/dataset.md for the recipe and the folder layout.
"""

from medsynth.dataset.plan import PlanItem, plan
from medsynth.dataset.recipe import Recipe, load_recipe, recipe_from_dict, recipe_schema
from medsynth.dataset.runner import RunSummary, run_local

__all__ = ["PlanItem", "Recipe", "RunSummary", "load_recipe", "plan", "recipe_from_dict", "recipe_schema", "run_local"]
