#!/bin/sh
# A tiny worker for trying bosun: works in a loop, and on SIGTERM finishes the job in
# hand before exiting, the way a queue consumer should.
stopping=0
trap 'echo "worker: stop requested, finishing the current job"; stopping=1' TERM INT
trap 'echo "worker: SIGHUP received (bosun forwarded it)"' HUP
n=0
while [ "$stopping" = 0 ]; do
    n=$((n + 1))
    echo "worker: job $n"
    sleep 1
done
echo "worker: done after $n jobs"
