"""Privacy: the membership-inference audit and the ROC statistics behind it (DP training
itself is ferkit.train.private)."""
