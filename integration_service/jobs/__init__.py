"""Job plumbing shared by every task: the base Task class and dead-lettering."""
