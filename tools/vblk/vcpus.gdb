# SPDX-License-Identifier: GPL-2.0
# Sourced by gdb attached to a hung guest's QEMU (vm.py's hang_report()):
# with every thread stopped, one consistent picture per vCPU of what
# decides whether it runs (halted, stop/stopped, queued work) and whether
# it takes an interrupt (interrupt_request, EFLAGS/hflags2, its local
# APIC's IRR/ISR and timer), then what the virtual clock the timer runs
# on adds to the host's monotonic clock, then the serial ports the guest
# talks through (ttyS0 the console, ttyS1 the runner's control channel)
# and the IOAPIC pins of their interrupts (4 and 3).  Nothing here calls
# into QEMU: a hung process may hold the locks such a call would take.
set pagination off
set $c = cpus_queue.tqh_first
while $c
  set $x = (X86CPU *) $c
  set $a = (APICCommonState *) $x->apic_state
  printf "vCPU %d: halted=%u stop=%d stopped=%d exit_request=%d interrupt_request=%#x work=%p eflags=%#lx hflags=%#x hflags2=%#x eip=%#lx\n", $c->cpu_index, $c->halted, $c->stop, $c->stopped, $c->exit_request, $c->interrupt_request, $c->work_list.sqh_first, $x->env.eflags, $x->env.hflags, $x->env.hflags2, $x->env.eip
  printf "vCPU %d: APIC irr=%08x%08x%08x%08x%08x%08x%08x%08x isr=%08x%08x%08x%08x%08x%08x%08x%08x timer_expiry=%ld timer.expire_time=%ld\n", $c->cpu_index, $a->irr[7], $a->irr[6], $a->irr[5], $a->irr[4], $a->irr[3], $a->irr[2], $a->irr[1], $a->irr[0], $a->isr[7], $a->isr[6], $a->isr[5], $a->isr[4], $a->isr[3], $a->isr[2], $a->isr[1], $a->isr[0], $a->timer_expiry, $a->timer->expire_time
  set $c = $c->node.tqe_next
end
printf "virtual clock: host monotonic + %ld ns (ticking %d)\n", timers_state.cpu_clock_offset, timers_state.cpu_ticks_enabled
set $i = 0
while $i < num_serial_hds
  set $u = (SerialState *) serial_hds[$i]->be->opaque
  printf "ttyS%d: ier=%#x iir=%#x lsr=%#x mcr=%#x fcr=%#x thr_ipending=%d tsr_retry=%u watch_tag=%u timeout_ipending=%d recv_fifo=%u xmit_fifo=%u\n", $i, $u->ier, $u->iir, $u->lsr, $u->mcr, $u->fcr, $u->thr_ipending, $u->tsr_retry, $u->watch_tag, $u->timeout_ipending, $u->recv_fifo.num, $u->xmit_fifo.num
  set $i = $i + 1
end
set $o = ioapics[0]
printf "IOAPIC: irr=%#x pin 3: %#lx level=%d, pin 4: %#lx level=%d\n", $o->irr, $o->ioredtbl[3], $o->irq_level[3], $o->ioredtbl[4], $o->irq_level[4]
