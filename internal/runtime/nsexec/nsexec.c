// The pre-Go-runtime stage of cove's spawn protocol; see nsexec.go.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

static int syncfd = -1;

static void write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(syncfd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		buf += n;
		len -= (size_t)n;
	}
}

// bail reports a JSON error message to the parent and exits.
static void bail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void bail(const char *fmt, ...)
{
	char msg[1024], out[2200];
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	size_t o = 0;
	o += (size_t)snprintf(out, sizeof(out), "{\"type\":\"error\",\"msg\":\"");
	for (const char *p = msg; *p && o < sizeof(out) - 64; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\')
			out[o++] = '\\', out[o++] = (char)c;
		else if (c < 0x20)
			o += (size_t)snprintf(out + o, 8, "\\u%04x", c);
		else
			out[o++] = (char)c;
	}
	o += (size_t)snprintf(out + o, sizeof(out) - o, ": %s\"}\n", strerror(saved));
	if (syncfd >= 0)
		write_all(out, o);
	_exit(1);
}

// expect reads one line from the parent and checks it.
static void expect(const char *want)
{
	char buf[64];
	size_t i = 0;
	for (;;) {
		char c;
		ssize_t n = read(syncfd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			errno = n == 0 ? EPIPE : errno;
			bail("read sync message %s", want);
		}
		if (c == '\n')
			break;
		if (i < sizeof(buf) - 1)
			buf[i++] = c;
	}
	buf[i] = '\0';
	if (strcmp(buf, want) != 0) {
		errno = EPROTO;
		bail("sync: got %s, want %s", buf, want);
	}
}

struct nstype {
	const char *name;
	int flag;
};

static const struct nstype nstypes[] = {
	{"user", CLONE_NEWUSER}, {"mount", CLONE_NEWNS}, {"mnt", CLONE_NEWNS},
	{"network", CLONE_NEWNET}, {"net", CLONE_NEWNET}, {"uts", CLONE_NEWUTS},
	{"ipc", CLONE_NEWIPC}, {"pid", CLONE_NEWPID}, {"cgroup", CLONE_NEWCGROUP},
	{"time", CLONE_NEWTIME}, {NULL, 0},
};

#define MAXJOIN 16

// join opens every namespace path first (later joins may hide host paths),
// then enters the user namespace, then the rest in the order given.
static void join(char *list)
{
	int fds[MAXJOIN], flags[MAXJOIN], n = 0;
	char *save = NULL;
	for (char *line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *colon = strchr(line, ':');
		if (!colon || n == MAXJOIN) {
			errno = EINVAL;
			bail("bad namespace join entry %s", line);
		}
		*colon = '\0';
		int flag = 0;
		for (const struct nstype *t = nstypes; t->name; t++)
			if (strcmp(t->name, line) == 0)
				flag = t->flag;
		if (!flag) {
			errno = EINVAL;
			bail("unknown namespace type %s", line);
		}
		int fd = open(colon + 1, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			bail("open %s namespace %s", line, colon + 1);
		fds[n] = fd;
		flags[n++] = flag;
	}
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < n; i++) {
			if ((pass == 0) != (flags[i] == CLONE_NEWUSER))
				continue;
			if (setns(fds[i], flags[i]) < 0)
				bail("setns %#x", flags[i]);
			close(fds[i]);
		}
	}
}

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		bail("open %s", path);
	size_t len = strlen(data);
	if (write(fd, data, len) != (ssize_t)len)
		bail("write %s", path);
	close(fd);
}

__attribute__((constructor)) static void cove_nsexec(void)
{
	if (!getenv("_COVE_INIT"))
		return;
	const char *fdstr = getenv("_COVE_SYNCFD");
	if (!fdstr)
		_exit(1);
	syncfd = atoi(fdstr);
	if (syncfd < 3)
		_exit(1);
	// The sync socket is the last fd the runtime passed on purpose. Any
	// fd above it leaked from whoever started the runtime without
	// O_CLOEXEC: close it before the container can see it (a directory fd
	// would be a way out through process.cwd, CVE-2024-21626).
	if (syscall(SYS_close_range, (unsigned)syncfd + 1, ~0U, 0) < 0 && errno != ENOSYS)
		bail("close leaked fds");

	// Not dumpable: nothing in the container may ptrace us or open our
	// /proc files while we still hold the runtime's privileges.
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		bail("prctl dumpable");
	expect("go");

	char *list = getenv("_COVE_JOIN");
	if (list && *list)
		join(strdup(list));

	const char *cl = getenv("_COVE_CLONE");
	int flags = cl ? (int)strtol(cl, NULL, 0) : 0;
	if (flags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			bail("unshare user namespace");
		static const char msg[] = "{\"type\":\"idmap\"}\n";
		write_all(msg, sizeof(msg) - 1);
		expect("idmap-done");
		// Become root of the new namespace when 0 is mapped; unmapped is fine.
		if (setresgid(0, 0, 0) < 0 && errno != EINVAL)
			bail("setresgid");
		if (setresuid(0, 0, 0) < 0 && errno != EINVAL)
			bail("setresuid");
		flags &= ~CLONE_NEWUSER;
	}
	if (flags && unshare(flags) < 0)
		bail("unshare %#x", flags);
	const char *offsets = getenv("_COVE_TIMENS");
	if ((flags & CLONE_NEWTIME) && offsets && *offsets)
		write_file("/proc/self/timens_offsets", offsets);

	// CLONE_PARENT: the runtime that spawned us becomes the parent of the
	// new process, so it can wait for it; we only report its pid.
	pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0)
		bail("clone");
	if (pid > 0) {
		char buf[64];
		int n = snprintf(buf, sizeof(buf), "{\"type\":\"pid\",\"pid\":%d}\n", pid);
		write_all(buf, (size_t)n);
		_exit(0);
	}
	unsetenv("_COVE_INIT");
	unsetenv("_COVE_JOIN");
	unsetenv("_COVE_CLONE");
	unsetenv("_COVE_TIMENS");
}
