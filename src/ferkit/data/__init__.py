"""Datasets as in-memory arrays: FER2013 CSV, image folders, label files and FER+ votes."""
from ferkit.data.dataset import FaceArray, LoadReport, find_split, load_dataset, split_if_present

__all__ = ["FaceArray", "LoadReport", "load_dataset", "find_split", "split_if_present"]
