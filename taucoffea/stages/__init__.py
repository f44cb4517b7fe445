"""Stage drivers: find inputs, run a processor through the execution layer, write outputs.

Each stage is a plain function that the CLI, pipelines and users' scripts call alike.
"""
