#!/bin/bash
# Check the machine's PostgreSQL, MariaDB, Redis and RabbitMQ on loopback and
# start the ones that are down (the commands of this machine kind).
set -uo pipefail

up() { (echo > "/dev/tcp/127.0.0.1/$1") >/dev/null 2>&1; }

wait_up() {
  local name=$1 port=$2
  for _ in $(seq 1 60); do up "$port" && return 0; sleep 1; done
  echo "services: $name did not come up on 127.0.0.1:$port" >&2
  return 1
}

rc=0
if ! up 5432; then
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  wait_up PostgreSQL 5432 || rc=1
fi
if ! up 3306; then
  echo "services: starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_up MariaDB 3306 || rc=1
fi
if ! up 6379; then
  echo "services: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
      --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_up Redis 6379 || rc=1
fi
if ! up 5672; then
  echo "services: starting RabbitMQ"
  rabbitmq-server -detached
  wait_up RabbitMQ 5672 || rc=1
fi
exit $rc
