namespace ControlPlane.Grains.Resources;

/// <summary>
/// References to grains by string key without Orleans resolving the interface type on every
/// call: <c>GetGrain&lt;T&gt;(key)</c> reflects over the interface's attributes each time, which
/// was about 5% of a create's CPU. The grain type and interface type of <typeparamref name="T"/>
/// are resolved once (they are the same on every silo) and each reference is built from them.
/// </summary>
public static class GrainRefs
{
    public static T Get<T>(this IGrainFactory grains, string key) where T : IGrainWithStringKey
    {
        var types = Types<T>.Value ??= Resolve<T>(grains);
        return (T)grains.GetGrain(GrainId.Create(types.Type, key), types.Interface);
    }

    private static ResolvedTypes Resolve<T>(IGrainFactory grains) where T : IGrainWithStringKey
    {
        var probe = (GrainReference)(object)grains.GetGrain<T>("-");
        return new ResolvedTypes(probe.GrainId.Type, probe.InterfaceType);
    }

    // A class, so that a racing first use publishes it whole.
    private sealed record ResolvedTypes(GrainType Type, GrainInterfaceType Interface);

    private static class Types<T>
    {
        public static ResolvedTypes? Value;
    }
}
