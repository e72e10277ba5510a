"""Workload zoo, feature extraction and the scheduler network (see the workloads issue)."""
