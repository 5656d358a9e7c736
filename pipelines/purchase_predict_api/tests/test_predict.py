import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from predict import predict  # noqa: E402


class PredictTest(unittest.TestCase):
    def test_bounds(self):
        self.assertEqual(predict({"num_items": 0})["purchase_probability"], 0.0)
        self.assertEqual(predict({"num_items": 50})["purchase_probability"], 1.0)


if __name__ == "__main__":
    unittest.main()
