"""The demo target: a seeded shop database with planted index problems and a workload."""
