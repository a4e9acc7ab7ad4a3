using ControlPlane.Contracts.Naming;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Resources;
using ControlPlane.Storage.Changes;
using ControlPlane.Storage.Errors;
using ControlPlane.Storage.GrainStorage;
using Google.Protobuf;
using Google.Protobuf.Collections;

namespace ControlPlane.Silo.Api;

/// <summary>
/// The Create/Get/List/Update/Delete methods of one resource, shared by every resource service.
/// Writes and Get go to the object's grain; List reads committed state from the store (one
/// consistent snapshot per page, with the resume token of that snapshot) and activates nothing.
/// </summary>
public sealed class ResourceHandlers<T, TGrain>(ResourceKind<T> kind, IGrainFactory grains, DurableStore store)
    where T : class, IMessage<T>, new()
    where TGrain : IResourceGrain<T>
{
    public const int DefaultPageSize = 100;
    public const int MaxPageSize = 1000;

    /// <summary>The most object bytes a List page holds (one object larger than this still makes a page of its own).</summary>
    public const int MaxPageBytes = 2 * 1024 * 1024;

    public Task<T> CreateAsync(T request)
    {
        kind.SetProgrammed(request, null);
        return Grain(KeyOf(request)).CreateAsync(request);
    }

    public Task<T> UpdateAsync(T request)
    {
        kind.SetProgrammed(request, null);
        return Grain(KeyOf(request)).UpdateAsync(request);
    }

    /// <summary>The object from its grain; for kinds the nodes program, with status.programmed of its revision.</summary>
    public async Task<T> GetAsync(GetRequest request)
    {
        var key = KeyOf(kind, request.Namespace, request.Name);
        var resource = await Grain(key).GetAsync().ConfigureAwait(false);
        if (kind.ShowsProgrammed)
        {
            var revision = long.Parse(kind.MetaOf(resource).Etag, System.Globalization.CultureInfo.InvariantCulture);
            var coverage = await Convergence.Coverage.OfAsync(grains, store, kind, key, revision).ConfigureAwait(false);
            // The grain hands out its committed object itself (in-silo calls pass references):
            // status.programmed goes on a copy, or it would end up in the object's next commit.
            resource = resource.Clone();
            kind.SetProgrammed(resource, coverage);
        }
        return resource;
    }

    public async Task<DeleteResponse> DeleteAsync(DeleteRequest request)
    {
        await Grain(KeyOf(kind, request.Namespace, request.Name)).DeleteAsync(request.Etag).ConfigureAwait(false);
        return new DeleteResponse();
    }

    public Task<TList> ListAsync<TList>(ListRequest request, Func<TList, RepeatedField<T>> items, Action<TList, string, string> tokens)
        where TList : class, IMessage<TList>, new() => Task.FromResult(List(kind, store, request, items, tokens));

    private TGrain Grain(string key) => grains.Get<TGrain>(key);

    private string KeyOf(T resource)
    {
        var meta = kind.MetaOf(resource);
        // A write's names get each kind's full naming rule from its grain.
        return WellFormedKey(kind, meta.Namespace, meta.Name, "metadata.");
    }

    /// <summary>One page of a kind, read from the store.</summary>
    public static TList List<TList>(ResourceKind<T> kind, DurableStore store, ListRequest request, Func<TList, RepeatedField<T>> items,
        Action<TList, string, string> tokens)
        where TList : class, IMessage<TList>, new()
    {
        var size = request.PageSize switch
        {
            0 => DefaultPageSize,
            < 0 or > MaxPageSize => throw ControlPlaneException.Invalid("page_size", $"{request.PageSize} is outside 1..{MaxPageSize}"),
            var n => n,
        };
        string? prefix = null;
        if (request.Namespace.Length > 0)
        {
            if (!kind.Namespaced) throw ControlPlaneException.Invalid("namespace", $"{kind.Name} is cluster-scoped");
            // The namespace naming rule, as Watch checks it: a name no namespace can have lists nothing, which hides a typo.
            if (NameRules.Label(request.Namespace) is { } error) throw ControlPlaneException.Invalid("namespace", error);
            prefix = request.Namespace + "/";
        }
        var (afterKey, firstResumeToken) = PageToken.Decode(request.PageToken, kind.Name, request.Namespace);
        // A token of another store (a data directory or database replaced since) would continue
        // with its keys over other data: OUT_OF_RANGE, list again, as Watch answers it.
        var resumeFrom = firstResumeToken is null ? null : ResumeToken.Decode(firstResumeToken, store.Partitions.StoreId, store.Partitions.Count, "page_token");
        var page = store.Store.List([kind.Name], prefix, afterKey, size);
        // A position past what the store holds (an edited token, or a store restored since) is refused as a Watch refuses it.
        if (resumeFrom is not null) Storage.ChangeRange.RequireNotAhead(resumeFrom, page.Heads, "page_token");
        var response = new TList();
        var list = items(response);
        // A page also ends before it outgrows MaxPageBytes (AIP-158 lets a page hold fewer than
        // page_size): stock gRPC clients refuse messages over 4 MiB, and 100 large objects exceed it.
        var (bytes, taken) = (0L, 0);
        foreach (var stored in page.Objects)
        {
            if (taken > 0 && bytes + stored.Data.Length > MaxPageBytes) break;
            list.Add(kind.Decode(stored.Data, stored.Revision));
            bytes += stored.Data.Length;
            taken++;
        }
        var more = page.HasMore || taken < page.Objects.Count;
        var resume = firstResumeToken ?? ResumeToken.Encode(store.Partitions.StoreId, page.Heads);
        tokens(response, more ? PageToken.Encode(kind.Name, request.Namespace, page.Objects[taken - 1].Key, resume) : string.Empty, resume);
        return response;
    }

    /// <summary>
    /// The key of an object a request looks up (a Get, a Delete, an explain's peer): a name no
    /// object of any kind could have is refused, as List and Watch refuse such a namespace, rather
    /// than answered NOT_FOUND, which hides a typo.
    /// </summary>
    public static string KeyOf(IResourceKind kind, string ns, string name, string fieldPrefix = "")
    {
        var key = WellFormedKey(kind, ns, name, fieldPrefix);
        if (NameRules.Subdomain(name) is { } nameError) throw ControlPlaneException.Invalid(fieldPrefix + "name", nameError);
        if (kind.Namespaced && NameRules.Label(ns) is { } nsError) throw ControlPlaneException.Invalid(fieldPrefix + "namespace", nsError);
        return key;
    }

    private static string WellFormedKey(IResourceKind kind, string ns, string name, string fieldPrefix)
    {
        RequireName(fieldPrefix + "name", name);
        if (kind.Namespaced)
        {
            RequireName(fieldPrefix + "namespace", ns);
        }
        else if (ns.Length > 0)
        {
            throw ControlPlaneException.Invalid(fieldPrefix + "namespace", $"{kind.Name} is cluster-scoped and takes no namespace");
        }
        return ObjectKeys.Of(ns, name);
    }

    // The full naming rule of each kind is checked by its grain; here only what keeps keys
    // well-formed, and what no grain can be keyed by (Orleans refuses a key of only white space).
    private static void RequireName(string field, string value)
    {
        if (value.Length == 0) throw ControlPlaneException.Invalid(field, "is required");
        if (value.Length > 253) throw ControlPlaneException.Invalid(field, $"must be at most 253 characters (is {value.Length})");
        if (value.Contains('/')) throw ControlPlaneException.Invalid(field, $"{ControlPlaneException.Quote(value)} must not contain '/'");
        if (value.Any(char.IsWhiteSpace)) throw ControlPlaneException.Invalid(field, $"{ControlPlaneException.Quote(value)} must not contain white space");
    }
}
