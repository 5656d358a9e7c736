"""Unit tests of the training nodes (standard library only)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))


class LayoutTest(unittest.TestCase):
    def test_kedro_project_layout(self):
        root = os.path.join(os.path.dirname(__file__), "..")
        for path in ("pyproject.toml", "conf/base", "conf/staging", "conf/production",
                     "src/purchase_predict/pipelines/training"):
            self.assertTrue(os.path.exists(os.path.join(root, path)), path)

    def test_pyproject_declares_kedro(self):
        root = os.path.join(os.path.dirname(__file__), "..")
        with open(os.path.join(root, "pyproject.toml")) as f:
            self.assertIn("[tool.kedro]", f.read())


if __name__ == "__main__":
    unittest.main()
