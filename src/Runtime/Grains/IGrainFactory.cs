namespace ControlPlane.Runtime.Grains;

/// <summary>Hands out references to grains; the grain is activated on its first call.</summary>
public interface IGrainFactory
{
    TGrain GetGrain<TGrain>(string key) where TGrain : IGrain;
}
