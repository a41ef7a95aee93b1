#!/bin/sh
# One-time setup of the worked example on a Debian host, as root. Read it before running it.
set -eu
id carstudio >/dev/null 2>&1 || useradd --system --home /srv/carstudio --shell /usr/sbin/nologin carstudio
# Owner-only data directory: images, ZIPs and the sign-in key belong to the dealership.
install -d -o carstudio -g carstudio -m 0700 /srv/carstudio /srv/carstudio/data
install -d -m 0750 /etc/carstudio
install -m 0600 carstudio.env /etc/carstudio/carstudio.env
install -m 0644 carstudio-web.service carstudio-worker@.service /etc/systemd/system/
echo "Next: install Car Studio into /srv/carstudio/.venv, edit /etc/carstudio/carstudio.env,"
echo "create the first user:"
echo "  sudo -u carstudio sh -c 'set -a; . /etc/carstudio/carstudio.env; \\"
echo "    /srv/carstudio/.venv/bin/carstudio users add NAME --admin'"
echo "then: systemctl enable --now carstudio-web carstudio-worker@1 carstudio-worker@2"
echo "and put deploy/Caddyfile in front (apt install caddy; cp Caddyfile /etc/caddy/)."
