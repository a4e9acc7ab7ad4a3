using System.CommandLine;
using System.Text.Json.Nodes;
using ControlPlane.Cli.Connection;
using ControlPlane.Cli.Output;
using ControlPlane.Cli.Resources;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using Grpc.Core;

namespace ControlPlane.Cli.Commands;

/// <summary>
/// <c>netctl watch KIND [NAME]</c>: the current objects (ADDED), then every change as it commits,
/// one line per event (table rows, or one JSON object per line with -o json). With -o json the
/// end of the initial list is a line {"type":"BOOKMARK","initial_events_end":true}. A stream that
/// breaks (UNAVAILABLE) or that the server ends (it shuts down; a warning says so) resumes from
/// its last token on the next silo; a compacted position lists again, and what changed meanwhile
/// is shown as events; while no silo answers it keeps trying. A watch the server refuses with a
/// retry pushback (its rate limit, or too many open watches) is asked for again after that pause.
/// With -l, an object whose labels stop matching is shown DELETED and one that comes to match
/// ADDED. Ends with Ctrl+C (exit 130) or SIGTERM (143).
/// </summary>
internal static class WatchCommand
{
    /// <summary>The longest event type, MODIFIED.</summary>
    private const int EventWidth = 8;

    public static Command Create(GlobalOptions global, Terminal terminal)
    {
        var kindArgument = GlobalOptions.KindArgument(slashForm: true);
        var name = new Argument<string?>("name") { Description = "Only this object (NAMESPACE/NAME or NAME with -n; or give it as KIND/NAME instead of the kind)", Arity = ArgumentArity.ZeroOrOne };
        var output = GlobalOptions.Output(OutputFormat.Table, OutputFormat.Wide, OutputFormat.Json, OutputFormat.Yaml);
        var selector = GlobalOptions.Selector();
        var all = GlobalOptions.AllNamespaces();
        var network = new Option<string?>("--network") { Description = "Only objects of this network (networks, endpoints, services, endpoint sets)" };
        var command = new Command("watch", "Stream the objects of a kind and then their changes") { kindArgument, name, output, selector, all, network };
        command.SetAction(async (parse, cancellationToken) =>
        {
            // KIND [NAME] or KIND/NAME (as get -o name prints it): one kind, at most one object.
            var named = GlobalOptions.Named(parse.GetValue(kindArgument)!, parse.GetValue(name) is { } given ? [given] : []);
            if (named is not [(var kind, var names)] || names.Count > 1) throw CliException.Usage("watch follows one object or one kind: netctl watch KIND [NAME] or netctl watch KIND/NAME");
            var filter = LabelFilter.Parse(parse.GetValue(selector));
            using var context = global.Context(parse, terminal);
            string ns, only = string.Empty;
            if (names is [var one])
            {
                (ns, only) = context.Reference(kind, one);
            }
            else
            {
                ns = context.ListNamespace(kind, parse.GetValue(all));
            }
            var request = new WatchRequest { Kinds = { kind.WatchKind }, Namespace = ns, Network = parse.GetValue(network) ?? string.Empty };
            var printer = new EventPrinter(terminal, kind, parse.GetValue(output), showNamespace: kind.Namespaced && ns.Length == 0);
            var view = new View(printer, e =>
            {
                var item = kind.FromEvent(e);
                if (item is null) return null;
                var meta = ResourceKind.MetaOf(item);
                return only.Length > 0 && meta.Name != only ? null : (item, meta, filter.Matches(meta.Labels));
            });
            return await RunAsync(context, request, view, cancellationToken);
        });
        return command;
    }

    private static async Task<int> RunAsync(CommandContext context, WatchRequest request, View view, CancellationToken cancellationToken)
    {
        var token = string.Empty;
        var failures = 0;
        var refusals = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var server = context.Servers.Current;
            string? broken = null;
            try
            {
                await context.Servers.RunAsync(async (client, ct) =>
                {
                    var watch = request.Clone();
                    watch.ResumeToken = token;
                    // Without a token the stream starts with a list (the first one, or again after compaction).
                    if (token.Length == 0) view.BeginList();
                    var started = false;
                    try
                    {
                        await foreach (var e in client.WatchAsync(watch, Calls.Until(ct), ct))
                        {
                            started = true;
                            failures = 0;
                            refusals = 0;
                            if (e.ResumeToken.Length > 0) token = e.ResumeToken;
                            if (e.Type == EventType.Bookmark)
                            {
                                if (e.InitialEventsEnd) view.EndList();
                                continue;
                            }
                            view.Apply(e);
                        }
                    }
                    catch (RpcException e) when (started && e.StatusCode == StatusCode.Unavailable && !ct.IsCancellationRequested)
                    {
                        // The silo answered, then its connection broke (killed, or its host gone):
                        // that says nothing about the other servers, which the next attempt tries.
                        broken = e.Status.Detail;
                    }
                    return true;
                }, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return Interrupts.ExitCode(ExitCodes.Success);
            }
            catch (RpcException) when (cancellationToken.IsCancellationRequested)
            {
                return Interrupts.ExitCode(ExitCodes.Success);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.OutOfRange)
            {
                // The server answers and says why the position is gone (compacted, another store's,
                // ahead of the store): list again from it at once; it did not end the watch.
                context.Terminal.Error.WriteLine($"warning: the watch cannot resume ({e.Status.Detail}); listing again");
                token = string.Empty;
                continue;
            }
            catch (RpcException e) when (PushbackRetry.Pushback(e, "Watch") is { } pause)
            {
                // Refused before it started (the server's rate limit, or too many open watches):
                // again after the pause the server asks for, saying so once per refusal spell.
                if (refusals++ == 0) context.Terminal.Error.WriteLine($"warning: {StatusNames.Describe(e)}; retrying");
                try
                {
                    await Task.Delay(pause, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return Interrupts.ExitCode(ExitCodes.Success);
                }
                continue;
            }
            catch (CliException e)
            {
                // No silo answers (all stopped, or restarting): keep trying from the last token,
                // backing off to one attempt in 5 s, and say so once per outage.
                if (failures++ == 0) context.Terminal.Error.WriteLine($"warning: {e.Message}; retrying until a server answers");
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(5000, 250 << Math.Min(failures, 5))), cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return Interrupts.ExitCode(ExitCodes.Success);
                }
                continue;
            }
            // The stream ended (the silo shut down) or broke after events: resume on the next silo.
            if (!cancellationToken.IsCancellationRequested)
            {
                // With several servers, the client has already said it moved on from a broken one.
                if (broken is null) context.Terminal.Error.WriteLine($"warning: {server} ended the watch (it is shutting down); resuming from the last event");
                else if (context.Servers.Addresses.Count == 1) context.Terminal.Error.WriteLine($"warning: the connection to {server} broke during the watch ({broken}); resuming from the last event");
                context.Servers.MoveFrom(server);
            }
        }
        return Interrupts.ExitCode(ExitCodes.Success);
    }

    /// <summary>
    /// What the user has been shown: the objects that match the selection, each as last printed.
    /// An object whose labels stop matching is printed DELETED and one that comes to match ADDED
    /// (as a Kubernetes label-selector watch does). A list after the first (the watch position
    /// was compacted) is reconciled with what was shown: an object unchanged since is not printed
    /// again, a changed one is MODIFIED, and one shown before but no longer listed (deleted while
    /// the watch was away) is DELETED when the list ends.
    /// </summary>
    private sealed class View(EventPrinter printer, Func<WatchEvent, (Google.Protobuf.IMessage Item, ObjectMeta Meta, bool Matches)?> read)
    {
        private readonly Dictionary<string, (string Etag, Google.Protobuf.IMessage Item)> _shown = new(StringComparer.Ordinal);
        private HashSet<string>? _listed;
        private bool _synced;

        public void BeginList() => _listed = [];

        public void EndList()
        {
            if (_listed is { } listed)
            {
                foreach (var (key, (_, item)) in _shown.Where(s => !listed.Contains(s.Key)).ToList())
                {
                    _shown.Remove(key);
                    printer.Print(EventType.Deleted, item);
                }
                _listed = null;
            }
            if (!_synced)
            {
                _synced = true;
                printer.Synced();
            }
        }

        public void Apply(WatchEvent e)
        {
            if (read(e) is not var (item, meta, matches)) return;
            var key = meta.Namespace + "/" + meta.Name;
            var type = e.Type;
            if (type == EventType.Deleted || !matches)
            {
                if (!_shown.Remove(key)) return;
                printer.Print(EventType.Deleted, item);
                return;
            }
            if (_listed is not null && type == EventType.Added)
            {
                _listed.Add(key);
                if (_shown.TryGetValue(key, out var seen))
                {
                    if (seen.Etag == meta.Etag) return;
                    type = EventType.Modified;
                }
            }
            else if (!_shown.ContainsKey(key))
            {
                type = EventType.Added;
            }
            _shown[key] = (meta.Etag, item);
            printer.Print(type, item);
        }
    }

    /// <summary>
    /// Rows under a header, or one JSON/YAML document per event. A streamed table cannot be laid
    /// out again once printed, so its columns are sized the way get sizes them, from what is known
    /// first: the rows of the initial list are held until the list ends and the columns fit the
    /// widest of them (and the header). A later value that does not fit (a dual-stack address, a
    /// second cluster IP) widens its column and the header is printed again above that row, so
    /// every row lines up under the header above it; columns never narrow, so the header is
    /// reprinted only when something is wider than anything before. The last column (AGE) is not
    /// padded, and EVENT is as wide as its longest value (MODIFIED) from the start.
    /// </summary>
    private sealed class EventPrinter(Terminal terminal, ResourceKind kind, OutputFormat format, bool showNamespace)
    {
        /// <summary>Spaces between columns, as get's tables have.</summary>
        private const int Gap = 3;

        private readonly List<string[]> _initial = [];
        private int[]? _widths;

        public void Synced()
        {
            if (format == OutputFormat.Json)
                terminal.Out.WriteLine(ManifestText.Json(new JsonObject { ["type"] = "BOOKMARK", ["initial_events_end"] = true }, indented: false));
            else if ((format is OutputFormat.Table or OutputFormat.Wide) && _widths is null)
            {
                var header = Header();
                _widths = [.. header.Select(h => h.Length)];
                _widths[0] = Math.Max(_widths[0], EventWidth);
                foreach (var row in _initial) Widen(row);
                Write(header);
                foreach (var row in _initial) Write(row);
                _initial.Clear();
            }
        }

        public void Print(EventType type, Google.Protobuf.IMessage item)
        {
            switch (format)
            {
                case OutputFormat.Json:
                    terminal.Out.WriteLine(ManifestText.Json(new JsonObject { ["type"] = type.ToString().ToUpperInvariant(), ["object"] = ManifestText.ToJson(kind, item) }, indented: false));
                    break;
                case OutputFormat.Yaml:
                    terminal.Out.Write("---\n" + ManifestText.Yaml(new JsonObject { ["type"] = type.ToString().ToUpperInvariant(), ["object"] = ManifestText.ToJson(kind, item) }));
                    break;
                default:
                    var (_, rows) = Objects.Rows(kind, [item], format == OutputFormat.Wide, showNamespace);
                    string[] row = [type.ToString().ToUpperInvariant(), .. rows[0]];
                    if (_widths is null)
                    {
                        // Part of the initial list: printed once the list ends and the widths are known.
                        _initial.Add(row);
                        return;
                    }
                    if (Widen(row)) Write(Header());
                    Write(row);
                    break;
            }
        }

        private string[] Header()
        {
            var (headers, _) = Objects.Rows(kind, [], format == OutputFormat.Wide, showNamespace);
            return ["EVENT", .. headers];
        }

        /// <summary>Widens the columns (all but the last) to fit <paramref name="row"/>; true when one had to grow.</summary>
        private bool Widen(string[] row)
        {
            var grew = false;
            for (var i = 0; i < row.Length - 1; i++)
            {
                if (row[i].Length <= _widths![i]) continue;
                _widths[i] = row[i].Length;
                grew = true;
            }
            return grew;
        }

        private void Write(string[] cells) =>
            terminal.Out.WriteLine(string.Concat(cells.Select((c, i) => i == cells.Length - 1 ? c : c.PadRight(_widths![i] + Gap))).TrimEnd());
    }
}
