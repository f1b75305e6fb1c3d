import os, sys
from weir import flow, task, ProcessPoolTaskRunner

@task
def pid():
    return os.getpid(), __name__

def test_probe():
    print(__name__, __file__, sys.modules.get(__name__))
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def f():
        return pid.submit().result()
    print(f(), os.getpid())
