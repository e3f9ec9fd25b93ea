"""Display windows: one mapping from calibrated values to grey levels, with known answers."""

import numpy as np

from medsynth.display import display_range, level_width_range, to_grey
from medsynth.drr.display import to_uint8
from medsynth.pictures import normalize, window


def test_level_width_maps_to_the_full_grey_range():
    assert level_width_range(40, 400) == (-160.0, 240.0)
    grey = window(np.array([-1000.0, -160.0, 40.0, 240.0, 3000.0]), 40, 400)
    assert grey.tolist() == [0, 0, 128, 255, 255]


def test_display_range_ignores_non_finite_values_and_is_never_empty():
    values = np.array([np.nan, np.inf, 1.0, 2.0, 3.0])
    low, high = display_range(values, (0.0, 100.0))
    assert (low, high) == (1.0, 3.0)
    assert display_range(np.array([np.nan])) == (0.0, 1.0)
    flat_low, flat_high = display_range(np.full(4, 7.0))
    assert flat_high > flat_low == 7.0


def test_every_front_door_draws_the_same_grey_levels():
    image = np.linspace(-5.0, 5.0, 64).reshape(8, 8)
    low, high = display_range(image)
    expected = to_grey(image, low, high)
    assert np.array_equal(normalize(image), expected)
    picture, used = to_uint8(image)
    assert np.array_equal(picture, expected) and used == (low, high)
    assert np.array_equal(to_uint8(image, invert=True)[0], 255 - expected)
