namespace ControlPlane.Cni.Tests;

/// <summary>
/// Podman 4.3 (Debian) with its CNI backend, all of it private to a <see cref="CniCluster"/>:
/// containers.conf and storage.conf through CONTAINERS_CONF / CONTAINERS_STORAGE_CONF, --root and
/// --runroot, its network configuration directory (the bed's), its plugin directory, tmp_dir and
/// file locks under the bed's directory, and libcni's cache in the bed's /var/lib. Settings as
/// measured on this machine: runc (crun fails on this cgroup layout), cgroupfs and file events
/// (systemd is not PID 1), ulimits within the hard limits, vfs storage. Containers run from a
/// --rootfs of busybox-static: nothing is pulled.
/// </summary>
internal sealed class Podman
{
    private readonly CniCluster _cluster;
    private readonly Dictionary<string, string> _environment;

    public Podman(CniCluster cluster)
    {
        _cluster = cluster;
        Directory.CreateDirectory(Home);
        var pidMax = int.Parse(File.ReadAllText("/proc/sys/kernel/pid_max").Trim(), System.Globalization.CultureInfo.InvariantCulture);
        File.WriteAllText(Path.Combine(Home, "containers.conf"), $"""
            [containers]
            default_ulimits = ["nofile=20000:20000", "nproc={Math.Min(4096, pidMax)}:{Math.Min(4096, pidMax)}"]
            [engine]
            runtime = "runc"
            cgroup_manager = "cgroupfs"
            events_logger = "file"
            events_logfile_path = "{Home}/events.log"
            tmp_dir = "{Home}/tmp"
            lock_type = "file"
            [network]
            network_backend = "cni"
            cni_plugin_dirs = ["{cluster.PluginDirectory}"]
            network_config_dir = "{cluster.ConfigDirectory}"
            """);
        File.WriteAllText(Path.Combine(Home, "storage.conf"), $"""
            [storage]
            driver = "vfs"
            runroot = "{Home}/run"
            graphroot = "{Home}/root"
            """);
        _environment = new()
        {
            ["CONTAINERS_CONF"] = Path.Combine(Home, "containers.conf"),
            ["CONTAINERS_STORAGE_CONF"] = Path.Combine(Home, "storage.conf"),
        };
        BuildRootfs();
    }

    public string Home => Path.Combine(_cluster.Directory, "podman");

    public string Rootfs => Path.Combine(Home, "rootfs");

    /// <summary>Runs podman with the private settings; returns exit code, stdout and stderr.</summary>
    public Runtimes.Outcome Run(params string[] args)
    {
        var (code, output, error) = Shell.Run(_environment, null, _cluster.Private(["podman", "--root", Path.Combine(Home, "root"), "--runroot", Path.Combine(Home, "run"), .. args]));
        return new Runtimes.Outcome(code, output, error);
    }

    public string Must(params string[] args)
    {
        var outcome = Run(args);
        if (outcome.Code != 0) throw new InvalidOperationException($"podman {string.Join(' ', args)}: {outcome}");
        return outcome.Output;
    }

    /// <summary>busybox-static and its applets, and a page for httpd to serve.</summary>
    private void BuildRootfs()
    {
        const string Busybox = "/bin/busybox";
        if (!File.Exists(Busybox)) throw new InvalidOperationException("busybox-static is not installed (apt-get install busybox-static)");
        foreach (var dir in (string[])["bin", "etc", "proc", "sys", "dev", "tmp", "www"]) Directory.CreateDirectory(Path.Combine(Rootfs, dir));
        File.Copy(Busybox, Path.Combine(Rootfs, "bin", "busybox"));
        foreach (var applet in (string[])["sh", "cat", "sleep", "wget", "httpd", "nslookup", "ip", "hostname", "timeout"])
        {
            File.CreateSymbolicLink(Path.Combine(Rootfs, "bin", applet), "busybox");
        }
        File.WriteAllText(Path.Combine(Rootfs, "www", "index.html"), "hello from a container\n");
    }
}
