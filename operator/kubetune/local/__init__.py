"""`kubetune run`: the operator's decisions, carried out on one machine."""
