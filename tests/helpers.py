"""Small helpers the tests share."""

from __future__ import annotations

import dataclasses

from click.testing import Result

from segdeploy.recipes import Recipe, load_recipe


def one_line_error(result: Result, *fragments: str) -> str:
    """Assert a CLI failure printed exactly one line, no traceback, and mentions every fragment."""
    assert result.exit_code not in (0, None), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    text = result.stderr.strip()
    assert "Traceback" not in result.output and "Traceback" not in text
    assert len(text.splitlines()) == 1, text
    for fragment in fragments:
        assert fragment in text, text
    return text


def tiny_recipe(architecture: str = "unet", epochs: int = 1) -> Recipe:
    """A recipe small enough to train and export in seconds on 64x96 images."""
    recipe = load_recipe(architecture)
    train = dataclasses.replace(recipe.train, epochs=epochs, batch_size=4, crop=(64, 64), repeats=1)
    export = dataclasses.replace(
        recipe.export, height=(32, 64, 512), width=(32, 96, 512), probe_sizes=[(64, 96), (96, 128)]
    )
    return recipe.replace(input_size=(64, 96), train=train, export=export)
