-- Every cost of every cluster-hour, given to exactly one (team, product line).
-- Direct costs stay with their owners. Shared-namespace, unmounted and (when configured) idle cost
-- is spread over the teams with direct workloads in the same cluster-hour, by a weighted share of
-- their CPU, RAM and GPU hours. Spreading works in integer nanos: each team gets the floor of its
-- share and the largest share takes the remainder, so the parts add up to the whole exactly.
with owned as (

    select * from {{ ref('stg_allocation_owned') }}

),

rules as (

    select * from {{ source('config', 'rules') }}

),

direct as (

    select
        cluster,
        hour_start,
        team,
        product_line,
        sum(total_cost) as direct_cost,
        sum(cpu_core_hours) as cpu_core_hours,
        sum(ram_gib_hours) as ram_gib_hours,
        sum(gpu_hours) as gpu_hours

    from owned
    where cost_type = 'direct'
    group by all

),

totals as (

    select
        cluster,
        hour_start,
        sum(cpu_core_hours) as cpu_core_hours,
        sum(ram_gib_hours) as ram_gib_hours,
        sum(gpu_hours) as gpu_hours

    from direct
    group by all

),

weighted as (

    select
        d.cluster,
        d.hour_start,
        d.team,
        d.product_line,
        (
            case when t.cpu_core_hours > 0 then r.weight_cpu * d.cpu_core_hours / t.cpu_core_hours else 0 end
            + case when t.ram_gib_hours > 0 then r.weight_ram * d.ram_gib_hours / t.ram_gib_hours else 0 end
            + case when t.gpu_hours > 0 then r.weight_gpu * d.gpu_hours / t.gpu_hours else 0 end
        ) / nullif(
            case when t.cpu_core_hours > 0 then r.weight_cpu else 0 end
            + case when t.ram_gib_hours > 0 then r.weight_ram else 0 end
            + case when t.gpu_hours > 0 then r.weight_gpu else 0 end,
            0
        ) as raw_share

    from direct as d
    join totals as t
        using (cluster, hour_start)
    cross join rules as r

),

to_spread as (

    select
        o.cluster,
        o.hour_start,
        o.cost_type,
        cast(sum(o.total_cost) * 1000000000 as bigint) as amount_nanos

    from owned as o
    cross join rules as r
    where o.cost_type in ('shared', 'unmounted')
        or (o.cost_type = 'idle' and r.idle_mode = 'spread')
    group by all

),

recipients as (

    select
        cluster,
        hour_start,
        team,
        product_line,
        coalesce(raw_share, 1.0 / count(*) over (partition by cluster, hour_start)) as share

    from weighted

    union all

    -- A cluster-hour with cost to spread but no direct workload: the default team carries it.
    select
        s.cluster,
        s.hour_start,
        r.default_team as team,
        r.default_product_line as product_line,
        1.0 as share

    from (select distinct cluster, hour_start from to_spread) as s
    cross join rules as r
    where not exists (
        select 1
        from direct as d
        where d.cluster = s.cluster
            and d.hour_start = s.hour_start
    )

),

floored as (

    select
        s.cluster,
        s.hour_start,
        s.cost_type,
        w.team,
        w.product_line,
        s.amount_nanos,
        cast(floor(s.amount_nanos * w.share) as bigint) as floor_nanos,
        row_number() over (
            partition by s.cluster, s.hour_start, s.cost_type
            order by w.share desc, w.team, w.product_line
        ) as share_rank

    from to_spread as s
    join recipients as w
        using (cluster, hour_start)

),

spread as (

    select
        cluster,
        hour_start,
        team,
        product_line,
        cost_type,
        floor_nanos + case
            when share_rank = 1
                then amount_nanos - sum(floor_nanos) over (partition by cluster, hour_start, cost_type)
            else 0
        end as nanos

    from floored

),

separate_idle as (

    select
        o.cluster,
        o.hour_start,
        '(idle)' as team,
        '(idle)' as product_line,
        'idle' as cost_type,
        sum(o.total_cost) as allocated_cost

    from owned as o
    cross join rules as r
    where o.cost_type = 'idle'
        and r.idle_mode = 'separate'
    group by all

),

final as (

    select
        cluster,
        hour_start,
        team,
        product_line,
        'direct' as cost_type,
        direct_cost as allocated_cost

    from direct

    union all

    select
        cluster,
        hour_start,
        team,
        product_line,
        cost_type,
        cast(nanos as decimal(38, 0)) * cast(0.000000001 as decimal(10, 9)) as allocated_cost

    from spread

    union all

    select * from separate_idle

)

select
    cluster,
    hour_start,
    team,
    product_line,
    cost_type,
    sum(allocated_cost) as allocated_cost

from final
group by all
