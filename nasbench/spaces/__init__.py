"""Search spaces: the DARTS CNN and RNN cell spaces and the NAS-Bench-201 cell space."""
