"""The examples in the modules' docstrings run as written (STYLE: 'a module docstring that runs')."""
import doctest

import pytest

import dataloader
import loss
import methods
import models


@pytest.mark.parametrize("module", [dataloader, loss, methods, models], ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
