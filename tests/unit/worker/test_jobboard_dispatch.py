"""Never two flows of one job in one process: a claim that lapsed and was
taken again by the same conductor while its flow runs dispatches nothing,
and leaves the claim alone (neither consumed nor abandoned)."""

import threading

from taskflow.conductors.backends import impl_executor

from consnap.worker import jobboard


class _Job(object):
    name = 'snap-1'


def test_a_job_running_here_is_not_run_twice(monkeypatch):
    started, release = threading.Event(), threading.Event()
    runs, finished = [], []

    def dispatch(self, job):
        runs.append(job.name)
        started.set()
        release.wait(10)
        return True

    monkeypatch.setattr(impl_executor.ExecutorConductor, '_dispatch_job',
                        dispatch)
    monkeypatch.setattr(impl_executor.ExecutorConductor, '_try_finish_job',
                        lambda self, job, consume, trash=False:
                        finished.append(consume))
    conductor = object.__new__(jobboard.ConsnapConductor)
    conductor._running_jobs = set()
    conductor._running_lock = threading.Lock()
    first = threading.Thread(
        target=lambda: finished.append(conductor._dispatch_job(_Job())))
    first.start()
    assert started.wait(10)
    again = conductor._dispatch_job(_Job())
    conductor._try_finish_job(_Job(), again)
    assert runs == ['snap-1'] and finished == []      # claim left alone
    release.set()
    first.join(10)
    assert finished == [True]
    # once it ended, the job may run here again
    release.set()
    assert conductor._dispatch_job(_Job()) is True
    assert runs == ['snap-1', 'snap-1']
