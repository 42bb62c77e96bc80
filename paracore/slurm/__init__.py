"""Queries of a Slurm cluster (sacct, sinfo, scontrol) and pure parsers of their output."""
