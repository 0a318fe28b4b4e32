"""Start moto's server for converge's tests and demo, on a free loopback port, with a few version-pinned
extensions where moto differs from AWS's documented behaviour.

Prints `port=<n>` on its first line of output, then serves until killed (or until its parent's stdin closes,
so a crashed test run never leaves an emulator behind).

Extensions (moto 5.2.5; each names the quirk it covers):
- ELB listeners ignore `InstanceProtocol` and report the front-end protocol instead (an HTTPS listener
  forwarding to HTTP instances reads back as HTTPS -> HTTPS). AWS keeps what was asked for.
- `DeleteLoadBalancerListeners` with several ports deletes none of them (each port's pass keeps the
  listeners of the others). AWS deletes every port named.
"""

import sys
import threading

import moto
from werkzeug.serving import make_server

PINNED = "5.2.5"
if moto.__version__ != PINNED:
    sys.exit(f"launcher.py extends moto {PINNED}; found {moto.__version__}: re-check the extensions below")

from moto.elb import models as elb_models  # noqa: E402
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: E402


def _remember_instance_protocols(listeners, ports):
    by_port = {str(p.get("LoadBalancerPort")): p.get("InstanceProtocol") for p in ports or []}
    for listener in listeners:
        wanted = by_port.get(str(listener.load_balancer_port))
        if wanted:
            listener._instance_protocol = wanted.upper()


elb_models.FakeListener.instance_protocol = property(
    lambda self: getattr(self, "_instance_protocol", None) or self.protocol
)

_lb_init = elb_models.LoadBalancer.__init__


def _lb_init_keeping_instance_protocol(self, *args, **kwargs):
    _lb_init(self, *args, **kwargs)
    ports = kwargs.get("ports", args[3] if len(args) > 3 else [])
    _remember_instance_protocols(self.listeners, ports)


elb_models.LoadBalancer.__init__ = _lb_init_keeping_instance_protocol

_create_listeners = elb_models.ELBBackend.create_load_balancer_listeners


def _create_listeners_keeping_instance_protocol(self, name, ports):
    balancer = _create_listeners(self, name, ports)
    if balancer is not None:
        _remember_instance_protocols(balancer.listeners, ports)
    return balancer


elb_models.ELBBackend.create_load_balancer_listeners = _create_listeners_keeping_instance_protocol


def _delete_listeners(self, name, ports):
    balancer = self.get_load_balancer(name)
    if balancer:
        gone = {int(p) for p in ports}
        balancer.listeners = [l for l in balancer.listeners if int(l.load_balancer_port) not in gone]
    return balancer


elb_models.ELBBackend.delete_load_balancer_listeners = _delete_listeners


def _exit_when_parent_goes():
    sys.stdin.read()
    import os

    os._exit(0)


def main():
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"port={server.server_port}", flush=True)
    if "--no-stdin-watch" not in sys.argv:
        threading.Thread(target=_exit_when_parent_goes, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
