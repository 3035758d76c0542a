"""RQ jobs, the retry schedule, the sweeper, worker startup and the embedded Redis server."""
